# client	server	client_state	server_state
# ss snapshot taken after packet 33 of fin-cross-loss.pcap
10.99.0.1:57278	10.99.0.2:7111	TIME-WAIT	TIME-WAIT
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      10.99.0.1:57278 10.99.0.2:7111
# ss -tanH in ftrec-srv (server):
#   LISTEN    0      4096   10.99.0.2:7111   0.0.0.0:*    
#   TIME-WAIT 0      0      10.99.0.2:7111 10.99.0.1:57278

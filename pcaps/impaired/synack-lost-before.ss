# client	server	client_state	server_state
# ss snapshot taken after packet 39 of synack-lost-before.pcap
10.99.0.1:59650	10.99.0.2:7112	TIME-WAIT	CLOSED
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      10.99.0.1:59650 10.99.0.2:7112
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7112 0.0.0.0:*

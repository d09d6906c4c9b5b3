# client	server	client_state	server_state
# ss snapshot taken after packet 73 of fin-wait-2-held.pcap
10.99.0.1:56846	10.99.0.2:7105	FIN-WAIT-2	CLOSE-WAIT
# ss -tanH in ftrec-cli (client):
#   FIN-WAIT-2 0      0      10.99.0.1:56846 10.99.0.2:7105
# ss -tanH in ftrec-srv (server):
#   LISTEN     0      4096   10.99.0.2:7105   0.0.0.0:*    
#   CLOSE-WAIT 1      0      10.99.0.2:7105 10.99.0.1:56846

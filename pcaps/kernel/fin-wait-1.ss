# client	server	client_state	server_state
10.99.0.1:52854	10.99.0.2:7005	FIN-WAIT-1	CLOSE-WAIT
# ss -tanH in ftrec-cli (client):
#   FIN-WAIT-1 0      1      10.99.0.1:52854 10.99.0.2:7005
# ss -tanH in ftrec-srv (server):
#   LISTEN     0      4096   10.99.0.2:7005   0.0.0.0:*    
#   CLOSE-WAIT 0      0      10.99.0.2:7005 10.99.0.1:52854

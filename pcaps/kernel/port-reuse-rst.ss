# client	server	client_state	server_state
# ss snapshot taken after packet 15 of port-reuse-rst.pcap
10.99.0.1:41016	10.99.0.2:7016	ESTAB	ESTAB
# ss -tanH in ftrec-cli (client):
#   ESTAB 0      0      10.99.0.1:41016 10.99.0.2:7016
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7016   0.0.0.0:*    
#   ESTAB  0      0      10.99.0.2:7016 10.99.0.1:41016

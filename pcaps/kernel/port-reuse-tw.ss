# client	server	client_state	server_state
# ss snapshot taken after packet 17 of port-reuse-tw.pcap
10.99.0.1:41015	10.99.0.2:7015	ESTAB	ESTAB
# ss -tanH in ftrec-cli (client):
#   ESTAB 0      0      10.99.0.1:41015 10.99.0.2:7015
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7015   0.0.0.0:*    
#   ESTAB  0      0      10.99.0.2:7015 10.99.0.1:41015

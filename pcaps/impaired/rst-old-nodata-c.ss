# client	server	client_state	server_state
# ss snapshot taken after packet 20 of rst-old-nodata-c.pcap (made from impaired/rst-old.pcap: drop=c:D)
10.99.0.1:57996	10.99.0.2:7106	ESTAB	ESTAB
# ss -tanH in ftrec-cli (client):
#   ESTAB 0      0      10.99.0.1:57996 10.99.0.2:7106
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7106   0.0.0.0:*    
#   ESTAB  0      0      10.99.0.2:7106 10.99.0.1:57996

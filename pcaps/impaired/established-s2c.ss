# client	server	client_state	server_state
# ss snapshot taken after packet 3 of established-s2c.pcap (made from kernel/established.pcap: oneway=s)
10.99.0.1:45498	10.99.0.2:7001	ESTAB	ESTAB
# ss -tanH in ftrec-cli (client):
#   ESTAB 0      0      10.99.0.1:45498 10.99.0.2:7001
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7001   0.0.0.0:*    
#   ESTAB  0      0      10.99.0.2:7001 10.99.0.1:45498

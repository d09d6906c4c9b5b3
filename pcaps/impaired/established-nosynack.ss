# client	server	client_state	server_state
# ss snapshot taken after packet 6 of established-nosynack.pcap (made from kernel/established.pcap: drop=s:SA)
10.99.0.1:45498	10.99.0.2:7001	ESTAB	ESTAB
# ss -tanH in ftrec-cli (client):
#   ESTAB 0      0      10.99.0.1:45498 10.99.0.2:7001
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7001   0.0.0.0:*    
#   ESTAB  0      0      10.99.0.2:7001 10.99.0.1:45498

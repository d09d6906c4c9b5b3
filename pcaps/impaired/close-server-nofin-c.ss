# client	server	client_state	server_state
# ss snapshot taken after packet 9 of close-server-nofin-c.pcap (made from kernel/close-server.pcap: drop=c:F)
10.99.0.1:37630	10.99.0.2:7003	CLOSED	TIME-WAIT
# ss -tanH in ftrec-cli (client):
# ss -tanH in ftrec-srv (server):
#   LISTEN    0      4096   10.99.0.2:7003   0.0.0.0:*    
#   TIME-WAIT 0      0      10.99.0.2:7003 10.99.0.1:37630

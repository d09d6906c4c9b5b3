# client	server	client_state	server_state
# ss snapshot taken after packet 8 of last-ack-c2s.pcap (made from kernel/last-ack.pcap: oneway=c)
10.99.0.1:55650	10.99.0.2:7007	TIME-WAIT	LAST-ACK
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      10.99.0.1:55650 10.99.0.2:7007
# ss -tanH in ftrec-srv (server):
#   LISTEN   0      4096   10.99.0.2:7007   0.0.0.0:*    
#   LAST-ACK 0      1      10.99.0.2:7007 10.99.0.1:55650

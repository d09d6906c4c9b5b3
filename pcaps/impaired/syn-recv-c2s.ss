# client	server	client_state	server_state
# ss snapshot taken after packet 2 of syn-recv-c2s.pcap (made from kernel/syn-recv.pcap: oneway=c)
10.99.0.1:59450	10.99.0.2:7010	SYN-SENT	SYN-RECV
# ss -tanH in ftrec-cli (client):
#   SYN-SENT 0      1      10.99.0.1:59450 10.99.0.2:7010
# ss -tanH in ftrec-srv (server):
#   LISTEN   0      4096   10.99.0.2:7010   0.0.0.0:*    
#   SYN-RECV 0      0      10.99.0.2:7010 10.99.0.1:59450

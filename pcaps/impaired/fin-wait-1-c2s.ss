# client	server	client_state	server_state
# ss snapshot taken after packet 7 of fin-wait-1-c2s.pcap (made from kernel/fin-wait-1.pcap: oneway=c)
10.99.0.1:49170	10.99.0.2:7005	FIN-WAIT-1	CLOSE-WAIT
# ss -tanH in ftrec-cli (client):
#   FIN-WAIT-1 0      1      10.99.0.1:49170 10.99.0.2:7005
# ss -tanH in ftrec-srv (server):
#   LISTEN     0      4096   10.99.0.2:7005   0.0.0.0:*    
#   CLOSE-WAIT 0      0      10.99.0.2:7005 10.99.0.1:49170

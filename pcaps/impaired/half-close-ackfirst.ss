# client	server	client_state	server_state
# ss snapshot taken after packet 8 of half-close-ackfirst.pcap (made from kernel/half-close.pcap: ackfirst=c:F)
10.99.0.1:57196	10.99.0.2:7004	FIN-WAIT-2	CLOSE-WAIT
# ss -tanH in ftrec-cli (client):
#   FIN-WAIT-2 0      0      10.99.0.1:57196 10.99.0.2:7004
# ss -tanH in ftrec-srv (server):
#   LISTEN     0      4096   10.99.0.2:7004   0.0.0.0:*    
#   CLOSE-WAIT 0      0      10.99.0.2:7004 10.99.0.1:57196

# client	server	client_state	server_state
# ss snapshot taken after packet 3 of fin-lost-s2c.pcap (made from kernel/fin-lost.pcap: oneway=s)
10.99.0.1:41340	10.99.0.2:7006	FIN-WAIT-1	ESTAB
# ss -tanH in ftrec-cli (client):
#   FIN-WAIT-1 0      1      10.99.0.1:41340 10.99.0.2:7006
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7006   0.0.0.0:*    
#   ESTAB  0      0      10.99.0.2:7006 10.99.0.1:41340

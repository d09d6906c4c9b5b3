# client	server	client_state	server_state
# ss snapshot taken after packet 11 of midstream-halfclose-s2c.pcap (made from kernel/midstream-halfclose.pcap: oneway=s)
10.99.0.1:43120	10.99.0.2:7018	FIN-WAIT-2	CLOSE-WAIT
# ss -tanH in ftrec-cli (client):
#   FIN-WAIT-2 0      0      10.99.0.1:43120 10.99.0.2:7018
# ss -tanH in ftrec-srv (server):
#   LISTEN     0      4096   10.99.0.2:7018   0.0.0.0:*    
#   CLOSE-WAIT 0      0      10.99.0.2:7018 10.99.0.1:43120

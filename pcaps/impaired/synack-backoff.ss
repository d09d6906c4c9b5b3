# client	server	client_state	server_state
# ss snapshot taken after packet 54 of synack-backoff.pcap
10.99.0.1:54972	10.99.0.2:7103	ESTAB	SYN-RECV
# ss -tanH in ftrec-cli (client):
#   ESTAB 0      0      10.99.0.1:54972 10.99.0.2:7103
# ss -tanH in ftrec-srv (server):
#   LISTEN   0      4096   10.99.0.2:7103   0.0.0.0:*    
#   SYN-RECV 0      0      10.99.0.2:7103 10.99.0.1:54972

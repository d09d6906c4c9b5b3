# client	server	client_state	server_state
# ss snapshot taken after packet 19 of rst-timewait-ahead.pcap
10.99.0.1:60372	10.99.0.2:7114	TIME-WAIT	CLOSED
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      10.99.0.1:60372 10.99.0.2:7114
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7114 0.0.0.0:*

# client	server	client_state	server_state
# ss snapshot taken after packet 25 of rst-old-timewait.pcap
10.99.0.1:57958	10.99.0.2:7107	TIME-WAIT	CLOSED
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      10.99.0.1:57958 10.99.0.2:7107
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7107 0.0.0.0:*

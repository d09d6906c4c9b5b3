# client	server	client_state	server_state
# ss snapshot taken after packet 20 of rst-timewait-exact.pcap
10.99.0.1:60598	10.99.0.2:7108	CLOSED	CLOSED
# ss -tanH in ftrec-cli (client):
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7108 0.0.0.0:*

# client	server	client_state	server_state
# ss snapshot taken after packet 4 of rst-server-s2c.pcap (made from kernel/rst-server.pcap: oneway=s)
10.99.0.1:40700	10.99.0.2:7012	CLOSED	CLOSED
# ss -tanH in ftrec-cli (client):
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7012 0.0.0.0:*

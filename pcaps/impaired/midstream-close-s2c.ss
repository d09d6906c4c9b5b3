# client	server	client_state	server_state
# ss snapshot taken after packet 11 of midstream-close-s2c.pcap (made from kernel/midstream-close.pcap: oneway=s)
10.99.0.1:56030	10.99.0.2:7019	TIME-WAIT	CLOSED
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      10.99.0.1:56030 10.99.0.2:7019
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7019 0.0.0.0:*

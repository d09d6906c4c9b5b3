# client	server	client_state	server_state
# ss snapshot taken after packet 24 of final-ack-lost-s2c.pcap (made from impaired/final-ack-lost.pcap: oneway=s)
10.99.0.1:55544	10.99.0.2:7110	TIME-WAIT	CLOSED
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      10.99.0.1:55544 10.99.0.2:7110
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7110 0.0.0.0:*

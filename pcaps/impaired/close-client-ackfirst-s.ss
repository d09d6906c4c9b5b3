# client	server	client_state	server_state
# ss snapshot taken after packet 10 of close-client-ackfirst-s.pcap (made from kernel/close-client.pcap: ackfirst=s:F)
10.99.0.1:53572	10.99.0.2:7002	TIME-WAIT	CLOSED
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      10.99.0.1:53572 10.99.0.2:7002
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7002 0.0.0.0:*

# client	server	client_state	server_state
# ss snapshot taken after packet 9 of close-client-nosynack.pcap (made from kernel/close-client.pcap: drop=s:SA)
10.99.0.1:53572	10.99.0.2:7002	TIME-WAIT	CLOSED
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      10.99.0.1:53572 10.99.0.2:7002
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7002 0.0.0.0:*

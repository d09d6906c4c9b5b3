# client	server	client_state	server_state
# ss snapshot taken after packet 3613 of long-transfer.pcap
10.99.0.1:34402	10.99.0.2:7017	TIME-WAIT	CLOSED
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      10.99.0.1:34402 10.99.0.2:7017
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7017 0.0.0.0:*

# client	server	client_state	server_state
# ss snapshot taken after packet 75 of synack-giveup.pcap
10.99.0.1:41102	10.99.0.2:7102	SYN-SENT	CLOSED
# ss -tanH in ftrec-cli (client):
#   SYN-SENT 0      1      10.99.0.1:41102 10.99.0.2:7102
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7102 0.0.0.0:*

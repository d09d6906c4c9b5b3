# client	server	client_state	server_state
# ss snapshot taken after packet 111 of syn-giveup.pcap
10.99.0.1:41101	10.99.0.2:7101	SYN-SENT	CLOSED
# ss -tanH in ftrec-cli (client):
#   SYN-SENT 0      1      10.99.0.1:41101 10.99.0.2:7101
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7101 0.0.0.0:*

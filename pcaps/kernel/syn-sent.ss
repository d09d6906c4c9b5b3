# client	server	client_state	server_state
# ss snapshot taken after packet 2 of syn-sent.pcap
10.99.0.1:46168	10.99.0.2:7009	SYN-SENT	CLOSED
# ss -tanH in ftrec-cli (client):
#   SYN-SENT 0      1      10.99.0.1:46168 10.99.0.2:7009
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7009 0.0.0.0:*

# client	server	client_state	server_state
10.99.0.1:37018	10.99.0.2:7009	SYN-SENT	CLOSED
# ss -tanH in ftrec-cli (client):
#   SYN-SENT 0      1      10.99.0.1:37018 10.99.0.2:7009
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7009 0.0.0.0:*

# client	server	client_state	server_state
10.99.0.1:45454	10.99.0.2:7001	ESTAB	ESTAB
# ss -tanH in ftrec-cli (client):
#   ESTAB 0      0      10.99.0.1:45454 10.99.0.2:7001
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7001   0.0.0.0:*    
#   ESTAB  0      0      10.99.0.2:7001 10.99.0.1:45454

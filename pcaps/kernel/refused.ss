# client	server	client_state	server_state
10.99.0.1:41013	10.99.0.2:7013	CLOSED	CLOSED
# ss -tanH in ftrec-cli (client):
# ss -tanH in ftrec-srv (server):

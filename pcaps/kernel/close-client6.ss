# client	server	client_state	server_state
[fd99::1]:49402	[fd99::2]:7021	TIME-WAIT	CLOSED
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      [fd99::1]:49402 [fd99::2]:7021
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   [fd99::2]:7021 [::]:*

# client	server	client_state	server_state
# ss snapshot taken after packet 1 of refused-c2s.pcap (made from kernel/refused.pcap: oneway=c)
10.99.0.1:41013	10.99.0.2:7013	CLOSED	CLOSED
# ss -tanH in ftrec-cli (client):
# ss -tanH in ftrec-srv (server):

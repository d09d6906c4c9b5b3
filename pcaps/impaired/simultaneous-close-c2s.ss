# client	server	client_state	server_state
# ss snapshot taken after packet 8 of simultaneous-close-c2s.pcap (made from kernel/simultaneous-close.pcap: oneway=c)
10.99.0.1:47836	10.99.0.2:7008	CLOSING	CLOSING
# ss -tanH in ftrec-cli (client):
#   CLOSING 1      1      10.99.0.1:47836 10.99.0.2:7008
# ss -tanH in ftrec-srv (server):
#   LISTEN  0      4096   10.99.0.2:7008   0.0.0.0:*    
#   CLOSING 1      1      10.99.0.2:7008 10.99.0.1:47836

# client	server	client_state	server_state
# ss snapshot taken after packet 5 of rst-client-c2s.pcap (made from kernel/rst-client.pcap: oneway=c)
10.99.0.1:57750	10.99.0.2:7011	CLOSED	CLOSED
# ss -tanH in ftrec-cli (client):
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7011 0.0.0.0:*

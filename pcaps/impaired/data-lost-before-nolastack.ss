# client	server	client_state	server_state
# ss snapshot taken after packet 26 of data-lost-before-nolastack.pcap (made from impaired/data-lost-before.pcap: drop=c:A#last)
10.99.0.1:50558	10.99.0.2:7113	TIME-WAIT	CLOSED
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      10.99.0.1:50558 10.99.0.2:7113
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7113 0.0.0.0:*

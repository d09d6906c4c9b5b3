# client	server	client_state	server_state
# ss snapshot taken after packet 66 of fin-wait-2-orphan-s2c.pcap (made from impaired/fin-wait-2-orphan.pcap: oneway=s)
10.99.0.1:56834	10.99.0.2:7104	CLOSED	CLOSE-WAIT
# ss -tanH in ftrec-cli (client):
# ss -tanH in ftrec-srv (server):
#   LISTEN     0      4096   10.99.0.2:7104   0.0.0.0:*    
#   CLOSE-WAIT 1      0      10.99.0.2:7104 10.99.0.1:56834

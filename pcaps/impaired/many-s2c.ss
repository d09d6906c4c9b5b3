# client	server	client_state	server_state
# ss snapshot taken after packet 27 of many-s2c.pcap (made from kernel/many.pcap: oneway=s)
10.99.0.1:39510	10.99.0.2:7014	TIME-WAIT	CLOSED
10.99.0.1:39518	10.99.0.2:7014	TIME-WAIT	CLOSED
10.99.0.1:39532	10.99.0.2:7014	TIME-WAIT	CLOSED
10.99.0.1:39534	10.99.0.2:7014	ESTAB	ESTAB
10.99.0.1:39550	10.99.0.2:7014	ESTAB	ESTAB
10.99.0.1:39558	10.99.0.2:7014	ESTAB	ESTAB
10.99.0.1:39566	10.99.0.2:7014	ESTAB	ESTAB
10.99.0.1:39568	10.99.0.2:7014	ESTAB	ESTAB
# ss -tanH in ftrec-cli (client):
#   TIME-WAIT 0      0      10.99.0.1:39510 10.99.0.2:7014
#   TIME-WAIT 0      0      10.99.0.1:39518 10.99.0.2:7014
#   TIME-WAIT 0      0      10.99.0.1:39532 10.99.0.2:7014
#   ESTAB     0      0      10.99.0.1:39534 10.99.0.2:7014
#   ESTAB     0      0      10.99.0.1:39550 10.99.0.2:7014
#   ESTAB     0      0      10.99.0.1:39558 10.99.0.2:7014
#   ESTAB     0      0      10.99.0.1:39566 10.99.0.2:7014
#   ESTAB     0      0      10.99.0.1:39568 10.99.0.2:7014
# ss -tanH in ftrec-srv (server):
#   LISTEN 0      4096   10.99.0.2:7014   0.0.0.0:*    
#   ESTAB  0      0      10.99.0.2:7014 10.99.0.1:39558
#   ESTAB  0      0      10.99.0.2:7014 10.99.0.1:39534
#   ESTAB  0      0      10.99.0.2:7014 10.99.0.1:39568
#   ESTAB  0      0      10.99.0.2:7014 10.99.0.1:39566
#   ESTAB  0      0      10.99.0.2:7014 10.99.0.1:39550

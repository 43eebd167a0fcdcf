module pepr-macvlan/agent/probe

go 1.22

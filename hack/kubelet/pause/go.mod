module pmv/pause

go 1.22

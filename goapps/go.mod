module gostartbench.example/goapps

go 1.21

module github.com/flowtrack/flowtrack

go 1.26.8

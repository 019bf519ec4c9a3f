module github.com/warren-sh/warren/sdk/go

go 1.26.8

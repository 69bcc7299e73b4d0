module github.com/myha/myha

go 1.26.8

require (
	github.com/go-mysql-org/go-mysql v1.16.0
	github.com/google/uuid v1.6.0
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/pingcap/errors v0.11.5-0.20260310054046-9c8b3586e4b2 // indirect
	go.uber.org/atomic v1.11.0 // indirect
)

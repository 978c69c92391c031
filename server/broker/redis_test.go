package broker

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

// testRedis returns a client on database db of the Redis the tests run
// against (127.0.0.1:6379), closed when the test ends, failing the test when
// Redis does not answer. Under -short (make test-unit, the tier that needs
// nothing running) the test is skipped instead.
func testRedis(t testing.TB, db int) *redis.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Redis at 127.0.0.1:6379 (make test runs it)")
	}
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: db})
	t.Cleanup(func() { client.Close() })
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis at 127.0.0.1:6379: %v", err)
	}
	return client
}

package broker

import (
	"os"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/redisconn/redistest"
)

// testCluster is the Redis Cluster of three masters the package's tests
// share, started by the first test that asks (testRedisCluster) and
// stopped by TestMain.
type testCluster struct {
	once sync.Once
	c    *redistest.Cluster
	err  error
}

var sharedCluster testCluster

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedCluster.c != nil {
		sharedCluster.c.Stop()
	}
	os.Exit(code)
}

// testRedisCluster returns a cluster client on the package's Redis
// Cluster, closed when the test ends. Under -short the test is skipped.
func testRedisCluster(t testing.TB) *redis.ClusterClient {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Redis Cluster (make test runs it)")
	}
	sharedCluster.once.Do(func() { sharedCluster.c, sharedCluster.err = redistest.Start(redistest.Options{}) })
	if sharedCluster.err != nil {
		t.Fatalf("Redis Cluster: %v", sharedCluster.err)
	}
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: sharedCluster.c.Addrs})
	t.Cleanup(func() { client.Close() })
	return client
}

// Package rpc holds what every skipgrid node shares about gRPC: message-size limits, dialing,
// and in-memory clients that let the embedded cluster call servers directly through the same
// service interfaces as the distributed one.
package rpc

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skipgrid/skipgrid/proto/skipgridpb"
)

// MaxMessageBytes bounds every gRPC message either way. A pull of a large minibatch or the
// vocabulary of a big job exceeds gRPC's 4 MiB default; payload limits inside the servers
// still bound what a message may ask for.
const MaxMessageBytes = 512 << 20

// ServerOptions are the options every skipgrid gRPC server starts with.
func ServerOptions(extra ...grpc.ServerOption) []grpc.ServerOption {
	return append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
	}, extra...)
}

// Dial returns a client connection to addr; creds nil means plaintext. The connection is lazy:
// failures show up on the first call, where the callers' retries handle them.
func Dial(addr string, creds credentials.TransportCredentials,
	extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
		),
	}, extra...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}

// InMemCoordinator calls a CoordinatorServer directly. Requests and responses are shared,
// not copied: callers must not change a request until its call returns, and servers never
// keep one.
type InMemCoordinator struct {
	Server skipgridpb.CoordinatorServer
}

var _ skipgridpb.CoordinatorClient = InMemCoordinator{}

// Register calls the server's Register.
func (c InMemCoordinator) Register(ctx context.Context, in *skipgridpb.RegisterRequest,
	_ ...grpc.CallOption) (*skipgridpb.RegisterResponse, error) {
	return c.Server.Register(ctx, in)
}

// GetJob calls the server's GetJob.
func (c InMemCoordinator) GetJob(ctx context.Context, in *skipgridpb.GetJobRequest,
	_ ...grpc.CallOption) (*skipgridpb.JobSpec, error) {
	return c.Server.GetJob(ctx, in)
}

// GetVocab calls the server's GetVocab.
func (c InMemCoordinator) GetVocab(ctx context.Context, in *skipgridpb.GetVocabRequest,
	_ ...grpc.CallOption) (*skipgridpb.Vocab, error) {
	return c.Server.GetVocab(ctx, in)
}

// Lease calls the server's Lease.
func (c InMemCoordinator) Lease(ctx context.Context, in *skipgridpb.LeaseRequest,
	_ ...grpc.CallOption) (*skipgridpb.LeaseResponse, error) {
	return c.Server.Lease(ctx, in)
}

// Heartbeat calls the server's Heartbeat.
func (c InMemCoordinator) Heartbeat(ctx context.Context, in *skipgridpb.HeartbeatRequest,
	_ ...grpc.CallOption) (*skipgridpb.HeartbeatResponse, error) {
	return c.Server.Heartbeat(ctx, in)
}

// Complete calls the server's Complete.
func (c InMemCoordinator) Complete(ctx context.Context, in *skipgridpb.CompleteRequest,
	_ ...grpc.CallOption) (*skipgridpb.CompleteResponse, error) {
	return c.Server.Complete(ctx, in)
}

// Fail calls the server's Fail.
func (c InMemCoordinator) Fail(ctx context.Context, in *skipgridpb.FailRequest,
	_ ...grpc.CallOption) (*skipgridpb.FailResponse, error) {
	return c.Server.Fail(ctx, in)
}

// InMemPS calls a ParameterServerServer directly, with the same sharing rules as
// InMemCoordinator.
type InMemPS struct {
	Server skipgridpb.ParameterServerServer
}

var _ skipgridpb.ParameterServerClient = InMemPS{}

// Configure calls the server's Configure.
func (c InMemPS) Configure(ctx context.Context, in *skipgridpb.ConfigureRequest,
	_ ...grpc.CallOption) (*skipgridpb.ConfigureResponse, error) {
	return c.Server.Configure(ctx, in)
}

// Pull calls the server's Pull.
func (c InMemPS) Pull(ctx context.Context, in *skipgridpb.PullRequest,
	_ ...grpc.CallOption) (*skipgridpb.PullResponse, error) {
	return c.Server.Pull(ctx, in)
}

// Push calls the server's Push.
func (c InMemPS) Push(ctx context.Context, in *skipgridpb.PushRequest,
	_ ...grpc.CallOption) (*skipgridpb.PushResponse, error) {
	return c.Server.Push(ctx, in)
}

// Stats calls the server's Stats.
func (c InMemPS) Stats(ctx context.Context, in *skipgridpb.StatsRequest,
	_ ...grpc.CallOption) (*skipgridpb.StatsResponse, error) {
	return c.Server.Stats(ctx, in)
}

// Checkpoint calls the server's Checkpoint.
func (c InMemPS) Checkpoint(ctx context.Context, in *skipgridpb.CheckpointRequest,
	_ ...grpc.CallOption) (*skipgridpb.CheckpointResponse, error) {
	return c.Server.Checkpoint(ctx, in)
}

// SetBackups calls the server's SetBackups.
func (c InMemPS) SetBackups(ctx context.Context, in *skipgridpb.SetBackupsRequest,
	_ ...grpc.CallOption) (*skipgridpb.SetBackupsResponse, error) {
	return c.Server.SetBackups(ctx, in)
}

// PSDialer returns a function that dials parameter-server shards over gRPC with opts, the
// form the coordinator and workers take. The connections live as long as the process.
func PSDialer(opts ...grpc.DialOption) func(context.Context, string) (
	skipgridpb.ParameterServerClient, error) {
	return func(_ context.Context, addr string) (skipgridpb.ParameterServerClient, error) {
		conn, err := Dial(addr, nil, opts...)
		if err != nil {
			return nil, err
		}
		return skipgridpb.NewParameterServerClient(conn), nil
	}
}

package api

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// echoService answers Publish with as many offsets as publications and
// records the incoming authorization metadata it saw.
type echoService struct {
	cablehubv1.UnimplementedCableServiceServer
	sawAuth []string
	sawReq  *cablehubv1.PublishRequest
}

func (e *echoService) Publish(ctx context.Context, req *cablehubv1.PublishRequest) (*cablehubv1.PublishResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	e.sawAuth = md.Get("authorization")
	e.sawReq = req
	if len(req.Publications) == 0 {
		return nil, status.Error(codes.InvalidArgument, "nothing to publish")
	}
	return &cablehubv1.PublishResponse{}, nil
}

func TestInProcessRunsInterceptorsInOrderWithMetadata(t *testing.T) {
	svc := &echoService{}
	var order []string
	tag := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			order = append(order, name+":"+info.FullMethod)
			return h(ctx, req)
		}
	}
	auth := NewAuth("s3cret")
	conn := NewInProcess(&cablehubv1.CableService_ServiceDesc, svc, tag("outer"), auth.UnaryInterceptor(), tag("inner"))
	client := cablehubv1.NewCableServiceClient(conn)

	req := &cablehubv1.PublishRequest{Publications: []*cablehubv1.Publication{{Stream: "a", Data: "1"}}}
	_, err := client.Publish(context.Background(), req)
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("without a token: %v, want Unauthenticated", err)
	}
	if len(order) != 1 || order[0] != "outer:"+cablehubv1.CableService_Publish_FullMethodName {
		t.Fatalf("interceptors seen %v, want only the outer one before auth refused", order)
	}

	order = nil
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer s3cret")
	if _, err := client.Publish(ctx, req); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	if len(order) != 2 || order[1] != "inner:"+cablehubv1.CableService_Publish_FullMethodName {
		t.Fatalf("interceptors seen %v", order)
	}
	if len(svc.sawAuth) != 1 || svc.sawAuth[0] != "Bearer s3cret" {
		t.Fatalf("service saw authorization %v", svc.sawAuth)
	}
	if svc.sawReq == req || svc.sawReq.Publications[0].Stream != "a" {
		t.Fatalf("service got %v: want a copy of the request", svc.sawReq)
	}

	_, err = client.Publish(ctx, &cablehubv1.PublishRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || st.Message() != "nothing to publish" {
		t.Fatalf("handler error arrived as %v", err)
	}
	err = conn.Invoke(ctx, "/cablehub.v1.CableService/Nope", req, &cablehubv1.PublishResponse{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown method: %v", err)
	}
}

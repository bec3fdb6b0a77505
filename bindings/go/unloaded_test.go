package asyncloop

import (
	"reflect"
	"testing"
)

// Every method of a zero-valued object returns, without the library loaded
// and without panicking: call them all through reflection with zero
// arguments (and a no-op function where a function is expected).
func TestZeroValuesWithoutLibrary(t *testing.T) {
	if lib != nil {
		t.Skip("library loaded in this process")
	}
	objs := []any{&Loop{}, &Transport{}, &Future[int]{}, &Server{}, &Handle{}, &DatagramTransport{}, &SubprocessTransport{}, &TLSConfig{},
		(*Loop)(nil), (*Future[int])(nil), (*Transport)(nil), (*Server)(nil), (*Handle)(nil), (*DatagramTransport)(nil), (*SubprocessTransport)(nil), (*TLSConfig)(nil)}
	for _, o := range objs {
		v := reflect.ValueOf(o)
		ty := v.Type()
		for i := range ty.NumMethod() {
			m := ty.Method(i)
			args := []reflect.Value{v}
			for j := 1; j < m.Type.NumIn(); j++ {
				in := m.Type.In(j)
				a := reflect.New(in).Elem()
				if in.Kind() == reflect.Func {
					a = reflect.MakeFunc(in, func([]reflect.Value) []reflect.Value {
						out := make([]reflect.Value, in.NumOut())
						for k := range out {
							out[k] = reflect.New(in.Out(k)).Elem()
						}
						return out
					})
				}
				args = append(args, a)
			}
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%v.%s panicked: %v", ty, m.Name, r)
					}
				}()
				if m.Type.IsVariadic() {
					m.Func.CallSlice(args)
				} else {
					m.Func.Call(args)
				}
			}()
		}
	}
}

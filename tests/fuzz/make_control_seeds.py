#!/usr/bin/python3
"""Writes the seed corpus of control_fuzz: one file per request kind, the
first byte choosing the RPC (control_fuzz.cc's switch), then the request's
protobuf bytes. Run with Debian's python3 (python3-protobuf):

    tests/fuzz/make_control_seeds.py tests/fuzz/corpus/control_fuzz
"""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(out_dir):
    with tempfile.TemporaryDirectory() as gen:
        subprocess.run(["protoc", f"-I{ROOT}/proto/aers/v1", f"--python_out={gen}",
                        "control.proto"], check=True)
        sys.path.insert(0, gen)
        import control_pb2 as pb

        def node(name, kind, **params):
            n = pb.Node(name=name, kind=kind, channels=1)
            for k, v in params.items():
                if isinstance(v, str):
                    n.params[k].choice = v
                elif isinstance(v, bool):
                    n.params[k].flag = v
                elif isinstance(v, list):
                    n.params[k].list.values.extend(v)
                else:
                    n.params[k].number = v
            return n

        seeds = {
            "get_graph": (0, pb.GetGraphRequest()),
            "get_status": (1, pb.GetStatusRequest()),
            "apply_yaml": (2, pb.ApplyGraphRequest(
                yaml="version: 1\noutputs: [{name: out, channels: 1}]\nnodes:\n"
                     "  - {name: t, kind: tone, params: {freq_hz: 440}}\n"
                     "routes: [{from: t, to: out}]\n", source_name="seed.yaml")),
            "apply_graph": (2, pb.ApplyGraphRequest(graph=pb.Graph(
                version=1, inputs=[pb.ExternalPort(name="in", channels=1)],
                outputs=[pb.ExternalPort(name="out", channels=1)],
                nodes=[node("eq", "biquad", type="peaking", freq_hz=1000.0, gain_db=3.0)],
                routes=[pb.Route(**{"from": "in", "to": "eq"}),
                        pb.Route(**{"from": "eq", "to": "out"})]), dry_run=True)),
            "edit": (3, pb.EditRequest(ops=[
                pb.EditOp(add_node=node("mx", "mixer", inputs=2.0, gains_db=[0.0, -3.0])),
                pb.EditOp(connect=pb.Route(**{"from": "g", "to": "mx.in1"})),
                pb.EditOp(set_parameter=pb.SetParameter(node="g", param="gain_db",
                                                        value=pb.ParamValue(number=-3))),
                pb.EditOp(remove_node="mx")], expected_revision=2)),
            "add_node": (4, pb.AddNodeRequest(node=node("d", "delay", delay_frames=100.0))),
            "remove_node": (5, pb.RemoveNodeRequest(name="m")),
            "connect": (6, pb.ConnectRequest(**{"from": "g", "to": "out"})),
            "disconnect": (7, pb.DisconnectRequest(**{"from": "m", "to": "out"})),
            "set_parameter": (8, pb.SetParameterRequest(node="g", param="mute",
                                                        value=pb.ParamValue(flag=True))),
            "reset": (9, pb.ResetToConfigRequest(expected_revision=1)),
            "list_kinds": (10, pb.ListKindsRequest()),
            "list_plugins": (11, pb.ListPluginsRequest()),
            "stream_meters": (12, pb.StreamMetersRequest(nodes=["m"], rate_hz=30)),
        }
        os.makedirs(out_dir, exist_ok=True)
        for name, (index, msg) in seeds.items():
            with open(os.path.join(out_dir, name), "wb") as f:
                f.write(bytes([index]) + msg.SerializeToString())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests/fuzz/corpus/control_fuzz"))

// Skew line: a token delayed by 0, 1, ..., DEPTH-1 cycles, every delay available as a tap.
//
// A systolic array feeds row i (or column j) of its edge i (j) cycles after row (column) 0, so
// that operands meet partial sums in the right PE (accelsim.sim.engines.systolic, module
// docstring: "the column j chain j cycles behind column 0, like the operands"). Instead of
// delaying every operand, the edge controllers delay the *token* that names the operand (fold,
// vector index, bank) and each row/column reads its operand memory when its token arrives.
//
// taps[k*WIDTH +: WIDTH] is d delayed by k cycles; tap 0 is d itself (combinational). Every stage
// resets to zero, so a token's valid bit (by convention its field 0) is clear after reset.
module delay_taps #(
    parameter WIDTH = 1,
    parameter DEPTH = 1
) (
    /* verilator lint_off UNUSEDSIGNAL */  // a one-tap line has no register
    input  wire                   clk,
    input  wire                   rst,
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire [WIDTH-1:0]       d,
    output wire [DEPTH*WIDTH-1:0] taps
);
    assign taps[WIDTH-1:0] = d;
    genvar k;
    generate
        for (k = 1; k < DEPTH; k = k + 1) begin : g_stage
            reg [WIDTH-1:0] q;
            always @(posedge clk) begin
                if (rst) q <= {WIDTH{1'b0}};
                else     q <= taps[(k-1)*WIDTH +: WIDTH];
            end
            assign taps[k*WIDTH +: WIDTH] = q;
        end
    endgenerate
endmodule

// Controller of the adder-tree engine: one step per cycle, from cycle 0 (the first cycle after
// start) until the last, with no bubble between output blocks or batch members.
//
// A step is one K fold (W inputs of the reduction) of one output block (LANES tokens x COLS_L
// output channels) of one GEMM of the batch. Loop order, outermost first: batch member, output
// channel block (the weights of a block stay in place over its token blocks), token block, K
// fold: an output block's K folds follow each other, so its accumulators finish it before the
// next block starts and no partial sum leaves the engine (DF_TREE in
// accelsim.sim.engines.systolic). Partial blocks at the GEMM's edges take a whole step each.
//
// The step token is a Mealy output of the counters, valid in the cycle the step enters the
// multipliers; the engine delays it to its accumulators.
module tree_ctrl #(
    parameter LANES  = 4,
    parameter COLS_L = 4,   // output channels per step: physical columns x products per DSP
    parameter W      = 8,   // inputs of a tree: K per step
    parameter IDX_W  = 16
) (
    input  wire             clk,
    input  wire             rst,
    // M, K, N of one GEMM and the batch (at least 1 each), held while running
    input  wire [IDX_W-1:0] m_len,
    input  wire [IDX_W-1:0] k_len,
    input  wire [IDX_W-1:0] n_len,
    input  wire [IDX_W-1:0] b_len,
    input  wire             start,
    output reg              running,
    // the step: K fold kf (inputs k0 .. k0 + W - 1) of the block at tokens m0.., channels n0..
    // of batch member b, whose A rows start at a_row (= b M + m0) and B columns at b_col (= b N + n0)
    output reg  [IDX_W-1:0] m0,
    output reg  [IDX_W-1:0] n0,
    output reg  [IDX_W-1:0] k0,
    output reg  [IDX_W-1:0] kf,
    output wire [IDX_W-1:0] a_row,
    output wire [IDX_W-1:0] b_col,
    output wire             first,     // the block's first K fold: accumulators start from 0
    output wire             last_k,    // its last K fold: the outputs are finished
    output wire             last       // the GEMM's last step
);
    localparam EXT = IDX_W + 1;  // sums of an index and a step size
    reg [IDX_W-1:0] b, a_base, b_base;
    wire [EXT-1:0] k_next = {1'b0, k0} + W[EXT-1:0];
    wire [EXT-1:0] m_next = {1'b0, m0} + LANES[EXT-1:0];
    wire [EXT-1:0] n_next = {1'b0, n0} + COLS_L[EXT-1:0];
    wire [EXT-1:0] b_next = {1'b0, b} + {{IDX_W{1'b0}}, 1'b1};
    wire last_m = m_next >= {1'b0, m_len};
    wire last_n = n_next >= {1'b0, n_len};
    wire last_b = b_next >= {1'b0, b_len};

    assign a_row  = a_base + m0;
    assign b_col  = b_base + n0;
    assign first  = k0 == {IDX_W{1'b0}};
    assign last_k = k_next >= {1'b0, k_len};
    assign last   = last_k && last_m && last_n && last_b;

    always @(posedge clk) begin
        if (rst) begin
            running <= 1'b0;
        end else if (start) begin
            running <= 1'b1;
            {m0, n0, k0, kf, b, a_base, b_base} <= {7*IDX_W{1'b0}};
        end else if (running) begin
            if (!last_k) begin
                k0 <= k_next[IDX_W-1:0];
                kf <= kf + 1'b1;
            end else begin
                k0 <= {IDX_W{1'b0}};
                kf <= {IDX_W{1'b0}};
                if (!last_m) begin
                    m0 <= m_next[IDX_W-1:0];
                end else begin
                    m0 <= {IDX_W{1'b0}};
                    if (!last_n) begin
                        n0 <= n_next[IDX_W-1:0];
                    end else begin
                        n0 <= {IDX_W{1'b0}};
                        if (!last_b) begin
                            b      <= b_next[IDX_W-1:0];
                            a_base <= a_base + m_len;
                            b_base <= b_base + n_len;
                        end else begin
                            running <= 1'b0;
                        end
                    end
                end
            end
        end
    end
endmodule

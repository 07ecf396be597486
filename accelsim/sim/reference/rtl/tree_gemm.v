// The multiplier + adder-tree GEMM engine (``array.kind: adder_tree``: Trio-ViT's and
// EfficientViT-FPGA's MAT) with its controller and operand memories, register for register the
// machine of accelsim.sim.engines.systolic.adder_tree_busy_cycles:
//
//   LANES lanes, one token each; per lane COLS physical columns of TREE DSP slices, each slice
//   computing PN products that share its activation (PN = 1, or 2: two INT8 products in one
//   DSP48E2 multiply, Xilinx WP486, with DATA_W = 8), so COLS_L = COLS * PN output channels per
//   step and TREE inputs of the reduction; per lane and output channel a pipelined adder tree
//   over the TREE products (an odd node passes through its level's register, so every path has
//   the same depth) and an accumulator over the K folds.
//
// Pipeline of a step (tree_ctrl issues one per cycle, from cycle 0):
//   cycle s            operands read from the memories, multiplied; products registered (mreg)
//   cycles s+1..s+LV   the tree's LV = ceil(log2 TREE) levels of adders, one register each
//   cycle s+LV+1       accumulate: acc = (first K fold ? 0 : acc) + tree sum, registered; on the
//                      block's last K fold the sum is also the output, written to omem
// so a GEMM of S steps does its last accumulation in cycle S - 1 + LV + 1, exposed as
// last_out_cycle (the index convention of GemmTiming.compute_cycles: cycle 0 is the first cycle
// after start).
//
// Use: preload the memories from hex files with one load pulse ($readmemh of A_FILE, B_FILE,
// paths relative to the simulator's working directory), set m_len/k_len/n_len/b_len, pulse start,
// wait for done, then a dump pulse writes omem words 0..dump_last to O_FILE ($writememh).
// Layouts (a word holds TREE operands, operand t in bits [t*DATA_W +: DATA_W], two's complement):
//   amem[{row, kf}] = A[row, kf*TREE + t]            row = b*M + m  (batch member b)
//   bmem[{col, kf}] = B_b[kf*TREE + t, n]            col = b*N + n
//   omem[{row, n}]  = C[row, n]                      ACC_W bits
// The index fields are $clog2(MAX_ROWS), $clog2(MAX_KF), $clog2(MAX_COLS), $clog2(MAX_N) bits
// wide. Operands outside the GEMM (tokens beyond M, channels beyond N, inputs beyond K) read as
// zeros; their steps are taken all the same (the schedule is fixed), their outputs not written.
module tree_gemm #(
    parameter LANES    = 4,
    parameter COLS     = 4,
    parameter PN       = 1,
    parameter TREE     = 8,
    parameter DATA_W   = 8,
    parameter ACC_W    = 32,
    parameter MAX_ROWS = 256,   // batch * M
    parameter MAX_KF   = 128,   // ceil(K / TREE)
    parameter MAX_COLS = 1024,  // batch * N
    parameter MAX_N    = 1024,
    parameter IDX_W    = 16,
    parameter CYC_W    = 32,
    parameter A_FILE   = "tree_a.hex",
    parameter B_FILE   = "tree_b.hex",
    parameter O_FILE   = "tree_o.hex"
) (
    input  wire             clk,
    input  wire             rst,
    input  wire [IDX_W-1:0] m_len,
    input  wire [IDX_W-1:0] k_len,
    input  wire [IDX_W-1:0] n_len,
    input  wire [IDX_W-1:0] b_len,
    input  wire             load,
    input  wire             start,
    input  wire             dump,
    input  wire [31:0]      dump_last,
    output wire             busy,
    output reg              done,
    output reg  [CYC_W-1:0] last_out_cycle
);
    localparam COLS_L = COLS * PN;
    localparam LV     = $clog2(TREE);
    localparam RA_W   = $clog2(MAX_ROWS);
    localparam KA_W   = $clog2(MAX_KF);
    localparam CA_W   = $clog2(MAX_COLS);
    localparam NA_W   = $clog2(MAX_N);
    localparam WORD   = TREE * DATA_W;
    localparam EXT    = IDX_W + 1;
    localparam TOK_W  = 4 + 3*IDX_W;  // {o_row, n0, m0, last, last_k, first, valid}

    reg [WORD-1:0]  amem [0:(1 << (RA_W + KA_W)) - 1];
    reg [WORD-1:0]  bmem [0:(1 << (CA_W + KA_W)) - 1];
    reg [ACC_W-1:0] omem [0:(1 << (RA_W + NA_W)) - 1];

    always @(posedge clk) begin
        if (load) begin
            $readmemh(A_FILE, amem);
            $readmemh(B_FILE, bmem);
        end
        if (dump) $writememh(O_FILE, omem, 0, dump_last);
    end

    // ---- controller and the step token's way to the accumulators. Memories take the low bits
    // of the indices, and the accumulators read only the token's last tap: the rest is expected.
    /* verilator lint_off UNUSEDSIGNAL */
    wire             running, first, last_k, last;
    wire [IDX_W-1:0] m0, n0, k0, kf, a_row, b_col;
    tree_ctrl #(.LANES(LANES), .COLS_L(COLS_L), .W(TREE), .IDX_W(IDX_W)) u_ctrl (
        .clk(clk), .rst(rst), .m_len(m_len), .k_len(k_len), .n_len(n_len), .b_len(b_len),
        .start(start), .running(running), .m0(m0), .n0(n0), .k0(k0), .kf(kf),
        .a_row(a_row), .b_col(b_col), .first(first), .last_k(last_k), .last(last)
    );
    wire [(LV+2)*TOK_W-1:0] tok_line;
    /* verilator lint_on UNUSEDSIGNAL */
    delay_taps #(.WIDTH(TOK_W), .DEPTH(LV + 2)) u_tok (
        .clk(clk), .rst(rst), .d({a_row, n0, m0, last, last_k, first, running}), .taps(tok_line)
    );
    wire [TOK_W-1:0] acc_tok    = tok_line[(LV+1)*TOK_W +: TOK_W];
    wire             acc_valid  = acc_tok[0];
    wire             acc_first  = acc_tok[1];
    wire             acc_last_k = acc_tok[2];
    wire             acc_last   = acc_tok[3];
    wire [IDX_W-1:0] acc_m0     = acc_tok[4 +: IDX_W];
    wire [IDX_W-1:0] acc_n0     = acc_tok[4 + IDX_W +: IDX_W];
    wire [IDX_W-1:0] acc_row    = acc_tok[4 + 2*IDX_W +: IDX_W];

    // ---- the datapath: one process owns the pipeline registers
    //   mreg[l*COLS + j][t]   multiplier stage: DSP (lane l, column j, input t)'s product
    //                         register (PN = 2: the packed 45-bit product, split on its way out)
    //   lvl[v][x][i]          node i of tree level v of tree x = l*COLS_L + c (channel c = j*PN + q)
    //   acc[x]                accumulator of tree x
    // It updates them from the accumulators back to the multipliers with blocking assignments, so
    // every stage reads its predecessor's value from before the clock edge: the semantics of
    // non-blocking assignments, which Verilator cannot keep in rolled loops over arrays (and
    // unrolled, every DSP and adder of the big engines becomes its own code and VPI signal).
    localparam LC   = LANES * COLS_L;
    localparam LV_N = LV > 0 ? LV : 1;
    localparam HALF = (TREE + 1) / 2;
    localparam SHIFT = 18;  // WP486: the second weight's offset in the DSP48E2's 27-bit port
    reg        [47:0]      mreg [0:LANES*COLS-1][0:TREE-1];
    reg signed [ACC_W-1:0] lvl  [1:LV_N][0:LC-1][0:HALF-1];
    reg signed [ACC_W-1:0] acc  [0:LC-1];

    // product q (< PN) of a DSP's product register
    function automatic signed [ACC_W-1:0] product(input [47:0] m, input integer q);
        reg [47:0] hi;
        begin
            if (PN == 1) begin
                product = {{(ACC_W - 2*DATA_W){m[2*DATA_W-1]}}, m[2*DATA_W-1:0]};
            end else if (q == 0) begin  // the low field: a * w0, |a * w0| < 2^(SHIFT-1)
                product = {{(ACC_W - SHIFT){m[SHIFT-1]}}, m[SHIFT-1:0]};
            end else begin  // the high field plus the borrow of a negative low field: a * w1
                hi = (m >> SHIFT) + {47'd0, m[SHIFT-1]};
                product = {{(ACC_W - 2*DATA_W){hi[2*DATA_W-1]}}, hi[2*DATA_W-1:0]};
            end
        end
    endfunction

    // one DSP multiply: a times the PN weights w[q*DATA_W +: DATA_W] sharing it (PN = 2 packs
    // w1 * 2^SHIFT + w0 into the 27-bit port, a into the 18-bit one, Xilinx WP486)
    function automatic [47:0] dsp(input [DATA_W-1:0] a, input [2*DATA_W-1:0] w);
        reg signed [26:0] pw;
        reg signed [17:0] a18;
        reg signed [44:0] p;
        begin
            a18 = $signed({{(18 - DATA_W){a[DATA_W-1]}}, a});
            if (PN == 1) begin
                pw = $signed({{(27 - DATA_W){w[DATA_W-1]}}, w[DATA_W-1:0]});
            end else begin
                pw = $signed({{(27 - SHIFT - DATA_W){w[2*DATA_W-1]}}, w[DATA_W +: DATA_W], {SHIFT{1'b0}}})
                   + $signed({{(27 - DATA_W){w[DATA_W-1]}}, w[DATA_W-1:0]});
            end
            p = pw * a18;
            dsp = {{3{p[44]}}, p};
        end
    endfunction

    reg [WORD-1:0]          a_word [0:LANES-1];
    reg [WORD-1:0]          b_word [0:COLS_L-1];
    reg [DATA_W-1:0]        a_op;
    reg [2*DATA_W-1:0]      w_op;
    reg signed [ACC_W-1:0]  total;
    reg [IDX_W-1:0]         idx;
    /* verilator lint_off UNUSEDSIGNAL */  // memories take an index's low bits
    reg [IDX_W-1:0]         row;
    /* verilator lint_on UNUSEDSIGNAL */
    integer l, c, j, t, i, v, q, x, nv, np;
    reg busy_r;  // the engine's clock enable: an idle engine's registers hold
    /* verilator lint_off BLKSEQ */
    always @(posedge clk) if (busy_r) begin
        // accumulate (the step issued LV + 1 cycles ago); the last K fold's sum is the output
        if (acc_valid) begin
            for (x = 0; x < LC; x = x + 1) begin
                l = x / COLS_L;
                c = x % COLS_L;
                total = (acc_first ? {ACC_W{1'b0}} : acc[x])
                      + (LV == 0 ? product(mreg[l*COLS + c/PN][0], c % PN) : lvl[LV_N][x][0]);
                acc[x] = total;
                idx = acc_n0 + c[IDX_W-1:0];
                row = acc_row + l[IDX_W-1:0];
                if (acc_last_k && acc_m0 + l[IDX_W-1:0] < m_len && idx < n_len)
                    omem[{row[RA_W-1:0], idx[NA_W-1:0]}] = total;
            end
        end
        // the adder trees' levels, the last first
        for (v = LV; v >= 1; v = v - 1) begin
            nv = (TREE + (1 << v) - 1) >> v;
            np = (TREE + (1 << (v - 1)) - 1) >> (v - 1);
            for (x = 0; x < LC; x = x + 1) begin
                l = x / COLS_L;
                c = x % COLS_L;
                for (i = 0; i < nv; i = i + 1) begin
                    if (v == 1)
                        lvl[v][x][i] = product(mreg[l*COLS + c/PN][2*i], c % PN)
                                     + (2*i + 1 < np ? product(mreg[l*COLS + c/PN][2*i + 1], c % PN) : {ACC_W{1'b0}});
                    else
                        lvl[v][x][i] = lvl[v-1][x][2*i] + (2*i + 1 < np ? lvl[v-1][x][2*i + 1] : {ACC_W{1'b0}});
                end
            end
        end
        // the multipliers, on the operands of the step issued now (zeros outside the GEMM)
        for (l = 0; l < LANES; l = l + 1) begin
            idx = m0 + l[IDX_W-1:0];
            row = a_row + l[IDX_W-1:0];
            a_word[l] = (running && idx < m_len) ? amem[{row[RA_W-1:0], kf[KA_W-1:0]}] : {WORD{1'b0}};
            for (t = 0; t < TREE; t = t + 1)
                if ({1'b0, k0} + t[EXT-1:0] >= {1'b0, k_len}) a_word[l][t*DATA_W +: DATA_W] = {DATA_W{1'b0}};
        end
        for (c = 0; c < COLS_L; c = c + 1) begin
            idx = n0 + c[IDX_W-1:0];
            row = b_col + c[IDX_W-1:0];
            b_word[c] = (running && idx < n_len) ? bmem[{row[CA_W-1:0], kf[KA_W-1:0]}] : {WORD{1'b0}};
        end
        for (l = 0; l < LANES; l = l + 1)
            for (j = 0; j < COLS; j = j + 1)
                for (t = 0; t < TREE; t = t + 1) begin
                    a_op = a_word[l][t*DATA_W +: DATA_W];
                    w_op = {2*DATA_W{1'b0}};
                    for (q = 0; q < PN; q = q + 1)
                        w_op[q*DATA_W +: DATA_W] = b_word[j*PN + q][t*DATA_W +: DATA_W];
                    mreg[l*COLS + j][t] = dsp(a_op, w_op);
                end
    end
    /* verilator lint_on BLKSEQ */

    // ---- the engine's own cycle count
    reg [CYC_W-1:0] cyc;
    assign busy = busy_r;
    always @(posedge clk) begin
        if (rst) begin
            busy_r <= 1'b0;
            done   <= 1'b0;
        end else if (start) begin
            busy_r         <= 1'b1;
            done           <= 1'b0;
            cyc            <= {CYC_W{1'b0}};
            last_out_cycle <= {CYC_W{1'b0}};
        end else if (busy_r) begin
            cyc <= cyc + 1'b1;
            if (acc_valid) last_out_cycle <= cyc;
            if (acc_valid && acc_last) begin
                busy_r <= 1'b0;
                done   <= 1'b1;  // every output is in omem from this cycle
            end
        end
    end
endmodule

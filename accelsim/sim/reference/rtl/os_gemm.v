// The pipelined output-stationary array with its controller and operand memories: computes
// C[M, N] = A[M, K] @ B[K, N] with the outputs stationary in the PEs (accelsim.sim.engines.systolic,
// module docstring, "pipelined" timing; cycle for cycle the same machine as _os_pipelined in
// accelsim/sim/reference/pe.py, with its packing along N: PN = 2 is two INT8 products per DSP48E2,
// WP486, Packing n = 2; a fold then covers COLS*PN columns of C, PE column j owning columns
// n0 + j*PN + b, see os_array and packed_mul2).
//
// Use: write A row by row (a_we, a_waddr = m, a_wdata = A[m, 0..MAX_K-1]) and B row by row
// (b_we, b_waddr = k, b_wdata = B[k, 0..MAX_N-1]), set m_len/k_len/n_len, pulse start for one
// cycle, wait for done, read C row by row (o_raddr = m, o_rdata = C[m, 0..MAX_N-1], combinational).
// Lane i of a row bus is [i*W +: W], two's complement.
//
// The array counts its own cycles: cycle 0 is the first cycle after start (fold 0's first
// vector), and last_mac_cycle is the index of the last cycle in which any PE did a MAC, the
// convention of pe.py and of GemmTiming.compute_cycles.
//
// A fold's L rows of data (ROWS, or M - m0 in the last row fold) sit in the bottom L rows, next
// to the ports: row i of the left edge reads A[m0 + i - (ROWS - L), tau] (the rows above get no
// operands), column j of the top edge B[tau, n0 + j]; columns beyond the GEMM's edge read zeros
// and still take part in the schedule. Results leave through one output port per column, L of
// them per fold.
module os_gemm #(
    parameter ROWS   = 4,
    parameter COLS   = 4,
    parameter DATA_W = 8,
    parameter ACC_W  = 32,
    parameter MAX_M  = 32,
    parameter MAX_K  = 32,
    parameter MAX_N  = 32,
    parameter IDX_W  = 16,
    parameter CYC_W  = 32,
    parameter PN     = 1
) (
    input  wire                    clk,
    input  wire                    rst,
    input  wire [IDX_W-1:0]        m_len,
    input  wire [IDX_W-1:0]        k_len,
    input  wire [IDX_W-1:0]        n_len,
    input  wire                    a_we,
    input  wire [$clog2(MAX_M)-1:0] a_waddr,
    input  wire [MAX_K*DATA_W-1:0] a_wdata,
    input  wire                    b_we,
    input  wire [$clog2(MAX_K)-1:0] b_waddr,
    input  wire [MAX_N*DATA_W-1:0] b_wdata,
    input  wire                    start,
    output wire                    busy,
    output reg                     done,
    output reg  [CYC_W-1:0]        last_mac_cycle,
    input  wire [$clog2(MAX_M)-1:0] o_raddr,
    output reg  [MAX_N*ACC_W-1:0]  o_rdata
);
    localparam MA_W = $clog2(MAX_M);
    localparam KA_W = $clog2(MAX_K);
    localparam NA_W = $clog2(MAX_N);
    localparam ST_W = 4 + 3*IDX_W;   // {n0, m0, tau, lastvec, first, bank, valid}
    localparam DR_W = 3 + 3*IDX_W;   // {n0, m0, step, last, bank, valid}
    localparam [IDX_W-1:0] R_IDX = ROWS[IDX_W-1:0];
    localparam [IDX_W-1:0] PN_IDX = PN[IDX_W-1:0];

    // The operand memories take a whole row per write; the array's edges read single elements.
    // Rows are written and read out by loops (of blocking writes: a memory is written only while
    // the array is idle), which the simulator keeps rolled where one block per lane would be code
    // per lane, and a row-wide word would be copied whole for every element read.
    reg signed [DATA_W-1:0] amem [0:MAX_M-1][0:MAX_K-1];
    reg signed [DATA_W-1:0] bmem [0:MAX_K-1][0:MAX_N-1];
    reg signed [ACC_W-1:0]  omem [0:MAX_M-1][0:MAX_N-1];

    integer w;
    /* verilator lint_off BLKSEQ */
    always @(posedge clk) begin
        if (a_we) begin
            w = 0;
            while (w < MAX_K) begin
                amem[a_waddr][w] = a_wdata[w*DATA_W +: DATA_W];
                w = w + 1;
            end
        end
        if (b_we) begin
            w = 0;
            while (w < MAX_N) begin
                bmem[b_waddr][w] = b_wdata[w*DATA_W +: DATA_W];
                w = w + 1;
            end
        end
    end
    /* verilator lint_on BLKSEQ */
    integer r;
    always @(*) begin
        o_rdata = '0;
        r = 0;
        while (r < MAX_N) begin
            o_rdata[r*ACC_W +: ACC_W] = omem[o_raddr][r];
            r = r + 1;
        end
    end

    genvar g, b;

    // ---- controller
    wire             finish, fold_end;
    wire [CYC_W-1:0] cyc;
    wire             st_valid, st_bank, st_first, st_lastvec;
    wire [IDX_W-1:0] st_tau, st_m0, st_n0;
    wire             dr_valid, dr_bank, dr_last;
    wire [IDX_W-1:0] dr_step, dr_m0, dr_n0;

    // a fold covers COLS*PN columns of C: the controller sees the logical array
    os_ctrl #(.ROWS(ROWS), .COLS(COLS*PN), .IDX_W(IDX_W), .CYC_W(CYC_W)) u_ctrl (
        .clk(clk), .rst(rst), .t_len(k_len), .sr_len(m_len), .sc_len(n_len),
        .start(start), .finish(finish), .fold_end(fold_end), .running(busy), .cyc(cyc),
        .st_valid(st_valid), .st_bank(st_bank), .st_first(st_first), .st_lastvec(st_lastvec),
        .st_tau(st_tau), .st_m0(st_m0), .st_n0(st_n0),
        .dr_valid(dr_valid), .dr_bank(dr_bank), .dr_last(dr_last),
        .dr_step(dr_step), .dr_m0(dr_m0), .dr_n0(dr_n0)
    );

    // ---- skew: row i and column j see the stream token i and j cycles late, column j the drain
    // token j cycles late
    wire [ST_W-1:0] st_tok = {st_n0, st_m0, st_tau, st_lastvec, st_first, st_bank, st_valid};
    wire [ROWS*ST_W-1:0] row_tok;
    wire [COLS*ST_W-1:0] col_tok;
    wire [COLS*DR_W-1:0] drn_tok;
    delay_taps #(.WIDTH(ST_W), .DEPTH(ROWS)) u_row_skew (.clk(clk), .rst(rst), .d(st_tok), .taps(row_tok));
    delay_taps #(.WIDTH(ST_W), .DEPTH(COLS)) u_col_skew (.clk(clk), .rst(rst), .d(st_tok), .taps(col_tok));
    delay_taps #(.WIDTH(DR_W), .DEPTH(COLS)) u_drn_skew (
        .clk(clk), .rst(rst), .d({dr_n0, dr_m0, dr_step, dr_last, dr_bank, dr_valid}), .taps(drn_tok)
    );

    // ---- array edges
    wire [ROWS*DATA_W-1:0] a_edge;
    wire [ROWS-1:0]        a_edge_valid, a_edge_bank, a_edge_first;
    wire [COLS*PN*DATA_W-1:0] b_edge;
    wire [COLS-1:0]        drv, drb;
    wire [COLS*IDX_W-1:0]  drs;
    wire [COLS*PN*ACC_W-1:0] acc_bottom;
    wire                   mac_any;

    // Every edge unpacks only the token fields it needs, and indexes memories by the low bits
    // of IDX_W-wide indices: the unused bits are expected.
    /* verilator lint_off UNUSEDSIGNAL */
    generate
        for (g = 0; g < ROWS; g = g + 1) begin : g_row_edge
            wire [ST_W-1:0]  tok = row_tok[g*ST_W +: ST_W];
            localparam integer GI = g;
            wire [IDX_W-1:0] tau = tok[4 +: IDX_W];
            wire [IDX_W-1:0] m0  = tok[4 + IDX_W +: IDX_W];
            wire [IDX_W-1:0] rem = m_len - m0;
            wire [IDX_W-1:0] len = (rem < R_IDX) ? rem : R_IDX;
            wire             has = GI[IDX_W-1:0] + len >= R_IDX;       // one of the bottom L rows
            wire [IDX_W-1:0] m   = m0 + GI[IDX_W-1:0] + len - R_IDX;  // m0 + i - (ROWS - L)
            assign a_edge_valid[g] = tok[0] && has;
            assign a_edge_bank[g]  = tok[1];
            assign a_edge_first[g] = tok[2];
            assign a_edge[g*DATA_W +: DATA_W] =
                (tok[0] && has) ? amem[m[MA_W-1:0]][tau[KA_W-1:0]] : {DATA_W{1'b0}};
        end
        for (g = 0; g < COLS; g = g + 1) begin : g_col_edge
            wire [ST_W-1:0]  tok = col_tok[g*ST_W +: ST_W];
            wire [IDX_W-1:0] tau = tok[4 +: IDX_W];
            wire [DR_W-1:0]  dtok = drn_tok[g*DR_W +: DR_W];
            for (b = 0; b < PN; b = b + 1) begin : g_lane
                wire [IDX_W-1:0] n = tok[4 + 2*IDX_W +: IDX_W] + g * PN_IDX + b;   // n0 + j*PN + b
                assign b_edge[(g*PN + b)*DATA_W +: DATA_W] =
                    (tok[0] && n < n_len) ? bmem[tau[KA_W-1:0]][n[NA_W-1:0]] : {DATA_W{1'b0}};
            end
            assign drv[g] = dtok[0];
            assign drb[g] = dtok[1];
            assign drs[g*IDX_W +: IDX_W] = dtok[3 +: IDX_W];
        end
    endgenerate

    os_array #(.ROWS(ROWS), .COLS(COLS), .DATA_W(DATA_W), .ACC_W(ACC_W), .IDX_W(IDX_W), .PN(PN)) u_array (
        .clk(clk), .rst(rst),
        .a_edge(a_edge), .a_edge_valid(a_edge_valid), .a_edge_bank(a_edge_bank), .a_edge_first(a_edge_first),
        .b_edge(b_edge), .dr_valid(drv), .dr_bank(drb), .dr_step(drs),
        .acc_bottom(acc_bottom), .mac_any(mac_any)
    );

    // a fold's last vector reaches row ROWS-1: PE (ROWS-1, 0) does the fold's last MAC now
    wire [ST_W-1:0] bottom_tok = row_tok[(ROWS-1)*ST_W +: ST_W];
    assign fold_end = bottom_tok[0] && bottom_tok[3];

    // ---- output ports: drain step d of column j sends out C[m0 + L-1-d, n0 + j]
    generate
        for (g = 0; g < COLS; g = g + 1) begin : g_port
            wire [DR_W-1:0]  dtok = drn_tok[g*DR_W +: DR_W];
            wire [IDX_W-1:0] m0   = dtok[3 + IDX_W +: IDX_W];
            wire [IDX_W-1:0] rem  = m_len - m0;
            wire [IDX_W-1:0] len  = (rem < R_IDX) ? rem : R_IDX;
            wire [IDX_W-1:0] m    = m0 + (len - 1 - dtok[3 +: IDX_W]);
            for (b = 0; b < PN; b = b + 1) begin : g_lane
                wire [IDX_W-1:0] n = dtok[3 + 2*IDX_W +: IDX_W] + g * PN_IDX + b;
                always @(posedge clk) begin
                    if (dtok[0] && m < m_len && n < n_len)
                        omem[m[MA_W-1:0]][n[NA_W-1:0]] <= acc_bottom[(g*PN + b)*ACC_W +: ACC_W];
                end
            end
        end
    endgenerate
    // the last fold's last step leaves the last column: every result is in omem from the next cycle
    wire [DR_W-1:0] last_tok = drn_tok[(COLS-1)*DR_W +: DR_W];
    wire [IDX_W-1:0] last_rem = m_len - last_tok[3 + IDX_W +: IDX_W];
    wire [IDX_W-1:0] last_len = (last_rem < R_IDX) ? last_rem : R_IDX;
    assign finish = busy && last_tok[0] && last_tok[2] && (last_tok[3 +: IDX_W] == last_len - 1);
    /* verilator lint_on UNUSEDSIGNAL */

    always @(posedge clk) begin
        if (rst) begin
            done <= 1'b0;
        end else if (start) begin
            done <= 1'b0;
            last_mac_cycle <= {CYC_W{1'b0}};
        end else begin
            if (finish) done <= 1'b1;
            if (busy && mac_any) last_mac_cycle <= cyc;
        end
    end
endmodule

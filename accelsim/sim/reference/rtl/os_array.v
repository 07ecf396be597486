// ROWS x COLS grid of os_pe: the pipelined output-stationary array without its controller
// (accelsim.sim.engines.systolic, module docstring; pe.py _os_pipelined).
//
// Edges (flattened, lane i at [i*W +: W]):
//   left   a_edge*   row i's A element with valid / bank / first, row i i cycles behind row 0
//   top    b_edge    column j's PN B elements, column j j cycles behind column 0
//          dr_*      column j's drain step: valid, bank and step d (rows below d shift down);
//                    column j j cycles behind column 0
//   bottom acc_bottom column j's output port: PE (ROWS-1, j)'s bank dr_bank[j] (PN outputs)
// mac_any: some PE does a MAC in this cycle.
module os_array #(
    parameter ROWS   = 4,
    parameter COLS   = 4,
    parameter DATA_W = 8,
    parameter ACC_W  = 32,
    parameter IDX_W  = 16,
    parameter PN     = 1    // packing: outputs per PE along N (os_pe)
) (
    input  wire                   clk,
    input  wire                   rst,
    input  wire [ROWS*DATA_W-1:0] a_edge,
    input  wire [ROWS-1:0]        a_edge_valid,
    input  wire [ROWS-1:0]        a_edge_bank,
    input  wire [ROWS-1:0]        a_edge_first,
    input  wire [COLS*PN*DATA_W-1:0] b_edge,
    /* verilator lint_off UNUSEDSIGNAL */  // a one-row array never shifts a drain
    input  wire [COLS-1:0]        dr_valid,
    input  wire [COLS-1:0]        dr_bank,
    input  wire [COLS*IDX_W-1:0]  dr_step,
    /* verilator lint_on UNUSEDSIGNAL */
    output wire [COLS*PN*ACC_W-1:0] acc_bottom,
    output wire                   mac_any
);
    wire signed [DATA_W-1:0] a_d [0:ROWS-1][0:COLS];
    wire                     a_v [0:ROWS-1][0:COLS];
    wire                     a_b [0:ROWS-1][0:COLS];
    wire                     a_f [0:ROWS-1][0:COLS];
    localparam BW = PN * DATA_W, AW = PN * ACC_W;
    wire [BW-1:0]            b_d [0:ROWS][0:COLS-1];
    // acc_d[i][j]: PE (i-1, j)'s drained bank, into PE (i, j); row 0 gets zeros (never shifts)
    wire [AW-1:0]            acc_d [0:ROWS][0:COLS-1];
    wire [ROWS*COLS-1:0]     macs;

    genvar i, j;
    generate
        for (i = 0; i < ROWS; i = i + 1) begin : g_left
            assign a_d[i][0] = a_edge[i*DATA_W +: DATA_W];
            assign a_v[i][0] = a_edge_valid[i];
            assign a_b[i][0] = a_edge_bank[i];
            assign a_f[i][0] = a_edge_first[i];
        end
        for (j = 0; j < COLS; j = j + 1) begin : g_top
            assign b_d[0][j] = b_edge[j*BW +: BW];
            assign acc_d[0][j] = {AW{1'b0}};
            assign acc_bottom[j*AW +: AW] = acc_d[ROWS][j];
        end
        for (i = 0; i < ROWS; i = i + 1) begin : g_row
            for (j = 0; j < COLS; j = j + 1) begin : g_col
                // step d moves every row below d down by one (after step d, row d is empty);
                // the top row never receives
                wire shift;
                if (i == 0) begin : g_top_row
                    assign shift = 1'b0;
                end else begin : g_lower_row
                    localparam [IDX_W-1:0] ROW = i;
                    assign shift = dr_valid[j] && (dr_step[j*IDX_W +: IDX_W] < ROW);
                end
                os_pe #(.DATA_W(DATA_W), .ACC_W(ACC_W), .PN(PN)) u_pe (
                    .clk(clk), .rst(rst),
                    .a_in(a_d[i][j]), .a_valid_in(a_v[i][j]), .a_bank_in(a_b[i][j]), .a_first_in(a_f[i][j]),
                    .a_out(a_d[i][j+1]), .a_valid_out(a_v[i][j+1]), .a_bank_out(a_b[i][j+1]),
                    .a_first_out(a_f[i][j+1]),
                    .b_in(b_d[i][j]), .b_out(b_d[i+1][j]),
                    .dr_shift(shift), .dr_bank(dr_bank[j]), .acc_in(acc_d[i][j]), .acc_out(acc_d[i+1][j]),
                    .mac(macs[i*COLS + j])
                );
            end
        end
    endgenerate

    assign mac_any = |macs;
endmodule
